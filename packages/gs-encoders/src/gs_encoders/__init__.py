"""gs-encoders: pretrained image and shape encoders for gs3d."""
