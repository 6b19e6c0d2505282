"""Infrastructure tests: CDK Template assertions on the synthesized stack."""
