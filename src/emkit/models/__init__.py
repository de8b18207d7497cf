"""The built-in models. Each file holds one model's maths; the engine does the rest."""
