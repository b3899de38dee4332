"""Sans-IO protocol and format code: bytes and text in, values out, no sockets or files."""
