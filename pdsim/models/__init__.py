"""Models: the presets pdsim creates itself, and loading any local Hugging Face causal LM."""
