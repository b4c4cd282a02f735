"""The baseline's further copies: each line of copies.tsv is a file curl
wrote and another mailbox that needs the same bytes.

usage: copy.py COPIES_TSV
"""

import os
import shutil
import sys


def main():
    made = set()
    with open(sys.argv[1]) as lines:
        for line in lines:
            src, dst = line.rstrip("\n").split("\t")
            folder = os.path.dirname(dst)
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            shutil.copyfile(src, dst)


if __name__ == "__main__":
    main()
