/**
 * rehype plugin for the preview: every top-level block of the page (paragraph, heading,
 * list, table, equation, displayed code…) gets `data-line="<start>-<end>"`, its lines in
 * the Markdown file, so that a problem at line L can be shown beside the block that holds
 * it. Cells are found by their `data-cell` instead (their section is built by weave.ts,
 * without a position). `report` does not use it: the written HTML stays as it was.
 */
import type { Root } from 'hast';

export function rehypeSourceLines() {
  return (tree: Root): void => {
    for (const node of tree.children) {
      if (node.type !== 'element' || node.position === undefined) continue;
      node.properties.dataLine = `${node.position.start.line}-${node.position.end.line}`;
    }
  };
}
