"""Operations: the use cases that keep an installed project and its store honest (verify, gc)."""
