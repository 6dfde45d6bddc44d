"""``python -m sa_pgque``: the ``sa-pgque`` command."""

from sa_pgque.cli import run

if __name__ == "__main__":
    run()
