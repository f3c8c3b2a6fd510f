"""pytest's root conftest: its folder, the repository root, goes on sys.path, so that tests import the benchmarks as a
package (`from benchmarks.curves import selector`) as well as `instruct_ner`. Defines nothing else."""
