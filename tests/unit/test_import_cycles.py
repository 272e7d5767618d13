"""No module of tagtrail imports itself through others (issue 26): the modules of a cycle can only be read,
tested and moved together. The graph is import-linter's (grimp): every import statement counts, also one in
a function or under TYPE_CHECKING (a type a module names is a dependency too: where a collaborator would
bring a cycle, name the little it uses in a Protocol), and a package's `__init__` is a module like any
other. Only an import by a string is not seen (importlib: how the cli's dispatch loads a command's module,
which imports the root app, which imports no command)."""

from __future__ import annotations

import grimp
from grimp import ImportGraph


def cycles(graph: ImportGraph) -> list[list[str]]:
    """Each group of modules that import each other, as one chain through it (`a → b → … → a`)."""
    found: list[list[str]] = []
    seen: set[str] = set()
    for module in sorted(graph.modules):
        if module in seen:
            continue
        group = graph.find_upstream_modules(module) & graph.find_downstream_modules(module)
        if not group and not graph.direct_import_exists(importer=module, imported=module):
            continue
        seen |= group
        step = min(group & graph.find_modules_directly_imported_by(module), default=module)
        back = graph.find_shortest_chain(importer=step, imported=module) if step != module else (module,)
        found.append([module, *(back or ())])
    return found


def test_the_finder_finds_a_cycle_through_other_modules_and_only_that() -> None:
    graph = ImportGraph()
    for importer, imported in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a"), ("c", "e")]:
        graph.add_import(importer=importer, imported=imported)
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_no_module_of_tagtrail_imports_itself_through_others() -> None:
    found = cycles(grimp.build_graph("tagtrail", cache_dir=None))
    assert found == [], "import cycles:\n" + "\n".join(" → ".join(chain) for chain in found)
