/**
 * Entry of the `lrp_widgets.Explorer` anywidget: composes the header, the layer tree and the
 * status line, and wires them to the kernel through the transport.
 *
 * Testing contract (stable): root element class `lrp-explorer`; tree rows `data-layer`;
 * status element `data-role="status"`.
 */
import type { AnyWidget, RenderProps } from "@anywidget/types";
import "./theme.css";
import { Transport } from "./transport";
import type { ExplorerTraits } from "./types";
import { createHeader } from "./views/header";
import { createStatus } from "./views/status";
import { createLayerTree, type LayerTree } from "./views/tree";

function render({ model, el }: RenderProps<ExplorerTraits>): () => void {
  const transport = new Transport(model);
  const root = document.createElement("div");
  root.className = "lrp-explorer";
  // Lumino (JupyterLab, Notebook 7) ignores its keyboard shortcuts for keys typed in here.
  root.dataset.lmSuppressShortcuts = "true";

  const status = createStatus();
  let tree: LayerTree | null = null;
  let body = document.createElement("div");

  const updateStatus = (): void => {
    status.update({
      status: transport.get("status"),
      error: transport.get("error"),
      layerCount: transport.get("layers").length,
      selectedCount: transport.get("selected").length,
    });
  };

  const build = (): void => {
    const next = document.createElement("div");
    next.className = "lrp-body";
    next.append(
      createHeader({
        modelName: transport.get("model_name"),
        totalParams: transport.get("total_params"),
        onExpandAll: (expanded) => tree?.setAllExpanded(expanded),
      }),
    );
    tree = createLayerTree(transport.get("layers"), {
      onSelect: (names) => {
        transport.setSelected(names);
        updateStatus();
      },
    });
    tree.setSelected(transport.get("selected"));
    next.append(tree.el);
    body.replaceWith(next);
    body = next;
    updateStatus();
  };

  root.append(body, status.el);
  el.append(root);
  build();

  transport.onChange(["layers", "model_name", "total_params"], build);
  transport.onChange(["selected"], () => {
    tree?.setSelected(transport.get("selected"));
    updateStatus();
  });
  transport.onChange(["status", "error"], updateStatus);

  return () => {
    transport.dispose();
    root.remove();
  };
}

const widget: AnyWidget<ExplorerTraits> = { render };
export default widget;
