"""Conversion hops: one module per hop, each a `Converter` subclass named `<Target>From<Source>`."""
