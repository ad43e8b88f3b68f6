"""Small edits of exported ONNX graphs: keep some outputs, put new inputs in front, rename outputs, set metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import onnx
from onnx import helper

__all__ = ["prune_to_outputs", "replace_inputs", "set_metadata"]


def _names_read_by(node: onnx.NodeProto) -> set[str]:
    """Values a node reads, including those its subgraphs (If / Loop bodies) read from the outer scope."""
    names = {name for name in node.input if name}
    for attribute in node.attribute:
        subgraphs = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs)
        for graph in subgraphs:
            for inner in graph.node:
                names |= _names_read_by(inner)
    return names


def prune_to_outputs(model: onnx.ModelProto, outputs: Mapping[str, str]) -> onnx.ModelProto:
    """A copy of `model` that computes only `outputs` ({output of model: its name in the copy}, in that order).

    Nodes, initializers and inputs nothing of the kept outputs needs are dropped; a renamed output is an Identity of
    the original value.
    """
    graph = model.graph
    declared = {value.name: value for value in graph.output}
    missing = [name for name in outputs if name not in declared]
    if missing:
        raise ValueError(f"the graph has no outputs {missing}; it has {sorted(declared)}")
    needed = set(outputs)
    kept_nodes = []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            kept_nodes.append(node)
            needed |= _names_read_by(node)
    kept_nodes.reverse()

    pruned = onnx.ModelProto()
    pruned.CopyFrom(model)
    del pruned.graph.node[:], pruned.graph.output[:], pruned.graph.input[:], pruned.graph.initializer[:]
    del pruned.graph.value_info[:]
    pruned.graph.node.extend(kept_nodes)
    pruned.graph.input.extend(value for value in graph.input if value.name in needed)
    pruned.graph.initializer.extend(tensor for tensor in graph.initializer if tensor.name in needed)
    pruned.graph.value_info.extend(value for value in graph.value_info if value.name in needed)
    for original, public in outputs.items():
        value = onnx.ValueInfoProto()
        value.CopyFrom(declared[original])
        if public != original:
            pruned.graph.node.append(helper.make_node("Identity", [original], [public], name=f"rename_{public}"))
            value.name = public
        pruned.graph.output.append(value)
    return pruned


def replace_inputs(
    model: onnx.ModelProto,
    new_inputs: Sequence[onnx.ValueInfoProto],
    nodes: Sequence[onnx.NodeProto],
    replaced: Sequence[str],
) -> onnx.ModelProto:
    """A copy of `model` whose inputs `replaced` are computed by `nodes` from `new_inputs` (given first)."""
    names = {value.name for value in model.graph.input}
    unknown = [name for name in replaced if name not in names]
    if unknown:
        raise ValueError(f"the graph has no inputs {unknown}; it has {sorted(names)}")
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    kept = [value for value in model.graph.input if value.name not in replaced]
    del edited.graph.input[:]
    edited.graph.input.extend([*new_inputs, *kept])
    old_nodes = list(edited.graph.node)
    del edited.graph.node[:]
    edited.graph.node.extend([*nodes, *old_nodes])
    return edited


def set_metadata(model: onnx.ModelProto, metadata: Mapping[str, object]) -> None:
    """Replace the model's metadata (what `InferenceSession.get_modelmeta().custom_metadata_map` returns); values
    become strings, as sherpa-onnx reads them."""
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=str(value))
