"""Build-time tools of the emulator (never imported by the running emulator)."""
