"""Cell-level growth models (cellular automata)."""
