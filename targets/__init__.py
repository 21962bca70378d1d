"""Device profiles (TOML), read by harness.targets; a wheel ships this folder as ``harness._targets``."""
