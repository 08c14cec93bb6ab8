"""`python -m zoopm`: the same entry point as the zoopm command."""

from zoopm.cli import main

if __name__ == "__main__":
    main()
