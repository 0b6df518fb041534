// The mixin with a budget for two of three organizations, for the promtool tests beside it
// (organizations.yaml); tests/test_alerts.py renders it and runs them.
(import 'mixin.libsonnet') + {
  _config+:: {
    monthlyBudgetUSD: 1000,
    monthlyBudgetUSDByOrganization: {
      'a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601': 5000,  // Acme Research
      'b7e8f9a0-1c2d-4e3f-9a4b-5c6d7e8f9012': 2000,  // Acme Platform
    },
  },
}
