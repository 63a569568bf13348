"""Pictures and tables of an annotated ``WorkflowGraph``: mermaid text, a PNG, a rich table.

Nodes are coloured by criticality (red: the run's outcome hangs on them, amber: partly,
green: a side concern) and labelled with their expected cost per run. Mermaid needs nothing
installed; the PNG needs matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rich.table import Table

from graphroute.errors import MissingExtraError
from graphroute.graph.inspect import WorkflowGraph
from graphroute.graph.profile import NodeProfile

HIGH, MEDIUM = 0.75, 0.4  # criticality bands
_MERMAID_CLASSES = {
    "high": "fill:#f8b4b4,stroke:#b91c1c,color:#111",
    "medium": "fill:#fde68a,stroke:#b45309,color:#111",
    "low": "fill:#bbf7d0,stroke:#15803d,color:#111",
    "marker": "fill:#e5e7eb,stroke:#6b7280,color:#111",
}


def band(criticality: float) -> str:
    return "high" if criticality >= HIGH else "medium" if criticality >= MEDIUM else "low"


def money(usd: float) -> str:
    """USD with enough digits to see sub-cent model calls."""
    if usd == 0:
        return "$0"
    return f"${usd:.4f}" if usd >= 0.01 else f"${usd:.2e}"


def _label(graph: WorkflowGraph, node: str, profile: NodeProfile | None) -> str:
    name = graph.nodes[node]["name"]
    if profile is None:
        return name
    return f"{name}<br/>{profile.kind} · {money(profile.cost_per_run)}/run · crit {profile.criticality:.2f}"


def _edge_text(data: Mapping[str, object]) -> str:
    parts = []
    if data.get("label"):
        parts.append(str(data["label"]))
    if data.get("branch"):
        parts.append(f"{float(data['probability']):.0%}")  # type: ignore[arg-type]
    if data["kind"] == "send":
        parts.append(f"×{float(data['width']):.1f}")  # type: ignore[arg-type]
    return " ".join(parts)


def to_mermaid(graph: WorkflowGraph, profiles: Mapping[str, NodeProfile] | None = None) -> str:
    """A mermaid ``flowchart``: subgraphs as blocks, branches dotted with their probabilities."""
    profiles = profiles or {}
    ids = {node: f"n{index}" for index, node in enumerate(graph.nodes)}
    lines = ["flowchart TD"]
    lines += [f"    classDef {name} {style}" for name, style in _MERMAID_CLASSES.items()]

    def emit(level: str, indent: str) -> None:
        for node in graph.level_nodes(level):
            kind = graph.kind(node)
            if kind in ("start", "end"):
                lines.append(f'{indent}{ids[node]}(["{graph.nodes[node]["name"]}"]):::marker')
                continue
            profile = profiles.get(node)
            css = band(profile.criticality) if profile else "low"
            shape = ('[["', '"]]') if kind == "subgraph" else ('[/"', '"/]') if kind == "tool" else ('["', '"]')
            lines.append(f"{indent}{ids[node]}{shape[0]}{_label(graph, node, profile)}{shape[1]}:::{css}")
            if kind == "subgraph":
                lines.append(f'{indent}subgraph s{ids[node][1:]} ["{node}"]')
                emit(node, indent + "    ")
                lines.append(f"{indent}end")

    emit("", "    ")
    for source, target, data in graph.edges(data=True):
        text = _edge_text(data)
        arrow = {"plain": "-->", "join": "-->", "enter": "-.->", "send": "==>"}.get(data["kind"], "-.->")
        middle = f'|"{text}"|' if text else ""
        lines.append(f"    {ids[source]} {arrow}{middle} {ids[target]}")
    return "\n".join(lines) + "\n"


def to_png(graph: WorkflowGraph, profiles: Mapping[str, NodeProfile], path: Path | str) -> Path:
    """Draw the graph to a PNG with matplotlib (top to bottom, nodes coloured by criticality)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise MissingExtraError("drawing the graph as a PNG", "plot") from error
    import networkx as nx

    layers = _layers(graph)
    drawing = nx.DiGraph()
    for node in graph.nodes:
        drawing.add_node(node, layer=layers[node])
    drawing.add_edges_from(graph.edges)
    positions = nx.multipartite_layout(drawing, subset_key="layer", align="horizontal")
    positions = {node: (x, -y) for node, (x, y) in positions.items()}  # first layer at the top
    colours = []
    cmap = plt.get_cmap("RdYlGn_r")
    for node in drawing.nodes:
        profile = profiles.get(node)
        colours.append("#e5e7eb" if profile is None else cmap(0.15 + 0.7 * profile.criticality))
    labels = {
        node: graph.nodes[node]["name"] + (f"\n{money(p.cost_per_run)}/run" if (p := profiles.get(node)) else "")
        for node in drawing.nodes
    }
    width = max(6.0, 1.8 * max(list(layers.values()).count(layer) for layer in set(layers.values())))
    figure, axes = plt.subplots(figsize=(width, 1.3 * (max(layers.values()) + 1) + 1))
    nx.draw_networkx_nodes(drawing, positions, node_color=colours, node_size=2200, edgecolors="#374151", ax=axes)
    nx.draw_networkx_labels(drawing, positions, labels=labels, font_size=7, ax=axes)
    styles = {"enter": "dotted", "conditional": "dashed", "command": "dashed", "send": "solid"}
    for kind in {data["kind"] for _, _, data in graph.edges(data=True)}:
        edges = [(s, t) for s, t, data in graph.edges(data=True) if data["kind"] == kind]
        nx.draw_networkx_edges(
            drawing,
            positions,
            edgelist=edges,
            style=styles.get(kind, "solid"),
            width=2.5 if kind == "send" else 1.2,
            node_size=2200,
            arrows=True,
            connectionstyle="arc3,rad=0.12",
            ax=axes,
        )
    edge_labels = {(s, t): text for s, t, data in graph.edges(data=True) if (text := _edge_text(data))}
    nx.draw_networkx_edge_labels(drawing, positions, edge_labels=edge_labels, font_size=6, ax=axes)
    axes.set_title(f"{graph.name}: expected cost per run, coloured by criticality", fontsize=9)
    axes.axis("off")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


def _layers(graph: WorkflowGraph) -> dict[str, int]:
    """Depth of each node from START, along the acyclic part of the graph (loops drawn upward)."""
    import networkx as nx

    acyclic = nx.DiGraph()
    acyclic.add_nodes_from(graph.nodes)
    for source, target in nx.dfs_edges(graph, source=WorkflowGraph.start_of("")):
        acyclic.add_edge(source, target)
    for source, target in graph.edges:
        acyclic.add_edge(source, target)
        if not nx.is_directed_acyclic_graph(acyclic):
            acyclic.remove_edge(source, target)
    depth: dict[str, int] = {}
    for node in nx.topological_sort(acyclic):
        depth[node] = max((depth[p] + 1 for p in acyclic.predecessors(node)), default=0)
    return depth


def profile_table(graph: WorkflowGraph, profiles: Mapping[str, NodeProfile]) -> Table:
    """One row per node: what it is, how often it runs, what it costs, how much depends on it."""
    table = Table(title=f"{graph.name} — expected per run", title_justify="left")
    columns = (
        "node",
        "kind",
        "model",
        "runs",
        "calls",
        "in tok",
        "out tok",
        "difficulty",
        "cost $",
        "downstream $",
        "criticality",
        "from",
    )
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("node", "kind", "model", "from") else "right", no_wrap=True
        )
    styles = {"high": "red", "medium": "yellow", "low": "green"}
    for node, p in profiles.items():
        modelled = p.calls_per_visit > 0
        cost = money(p.cost_per_run)
        if p.kind == "subgraph":  # its own cost is its nodes' cost, listed below it
            inside = sum(q.cost_per_run for n, q in profiles.items() if node in graph.containers_of(n))
            cost = f"[dim]({money(inside)})[/]"
        found = ", ".join(graph.nodes[node].get("models", ()))
        model = p.model or (f"[dim]{found}[/]" if found else "")
        table.add_row(
            node,
            p.kind,
            model,
            f"{p.visits_per_run:.2f}",
            f"{p.calls_per_run:.2f}" if modelled else "",
            f"{p.input_tokens:.0f}" if modelled else "",
            f"{p.output_tokens:.0f}" if modelled else "",
            f"{p.complexity.mean:.2f}" if modelled else "",
            cost,
            money(p.downstream_cost),
            f"[{styles[band(p.criticality)]}]{p.criticality:.2f}[/]",
            p.source,
        )
    total = sum(p.cost_per_run for p in profiles.values())
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        "",
        f"{sum(p.calls_per_run for p in profiles.values()):.2f}",
        "",
        "",
        "",
        money(total),
        "",
        "",
        "",
        style="bold",
    )
    table.caption = (
        "runs/calls: expected per run · difficulty: mean of the complexity distribution · "
        "downstream: expected spend after one execution · criticality: P(runs) × P(a wrong output "
        "reaches the final state)"
    )
    table.caption_justify = "left"
    return table
