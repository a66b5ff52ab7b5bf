"""The pipeline's stages (generate, format-check, exec-check, semantic-check) and the steps around them."""
