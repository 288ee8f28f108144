"""``python -m drill``: the same as ``vcf-drill``."""

from drill.main import main

main()
