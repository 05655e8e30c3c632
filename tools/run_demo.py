"""Run the main recipes end to end on the demo data and say where the results are
(pipelines/demo.py; `make demo` builds the data first)."""
from pipelines.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
