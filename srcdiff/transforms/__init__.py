"""The compiler's passes, one per module, each with one public ``rewrite(module, ctx)``."""
