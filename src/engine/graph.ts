/**
 * The cells' `cell:` imports as a dependency graph: topological order, cycles and
 * imports of unknown cells (both become messages; the cells concerned, and every cell
 * downstream of them, are left out of `order` so the build carries on with the rest).
 */
import type { ParsedDocument } from './parse.ts';

export interface CellGraph {
  /** Runnable cells, dependencies first; ties keep document order. */
  order: string[];
  /** Direct dependencies of a cell (its known `cell:` imports, source order). */
  deps(id: string): string[];
  /** Every cell that depends on `id`, directly or transitively, in document order. */
  dependents(id: string): string[];
  /** Cells left out of `order`, with the reason (for the error box and the log). */
  blocked: Map<string, string>;
}

const SOURCE = 'report';

export function buildGraph(doc: ParsedDocument): CellGraph {
  const { file, cells } = doc;
  const known = new Set(cells.map((c) => c.id));
  const docIndex = new Map(cells.map((c, i) => [c.id, i]));
  const deps = new Map<string, string[]>();
  const blocked = new Map<string, string>();

  for (const [id, why] of doc.rejected ?? []) blocked.set(id, why);
  for (const cell of cells) {
    deps.set(cell.id, cell.imports.filter((id) => known.has(id)));
    for (const site of doc.cellImports.get(cell.id) ?? []) {
      if (known.has(site.id)) continue;
      file.message(
        `cell "${cell.id}" imports unknown cell "${site.id}"; ` +
          `known cells: ${[...known].join(', ') || 'none'}. Fix the id in 'cell:${site.id}' or add a cell with id=${site.id}`,
        { place: site.place, ruleId: 'unknown-cell', source: SOURCE },
      );
      if (!blocked.has(cell.id)) blocked.set(cell.id, `imports unknown cell "${site.id}"`);
    }
  }

  const dependentsOf = new Map<string, string[]>(cells.map((c) => [c.id, []]));
  for (const [id, ds] of deps) for (const d of ds) dependentsOf.get(d)?.push(id);

  const components = stronglyConnected(cells.map((c) => c.id), deps).sort(
    (a, b) => Math.min(...a.map((id) => docIndex.get(id) ?? 0)) - Math.min(...b.map((id) => docIndex.get(id) ?? 0)),
  );
  for (const component of components) {
    const first = component[0];
    if (first === undefined) continue;
    const selfLoop = component.length === 1 && (deps.get(first) ?? []).includes(first);
    if (component.length < 2 && !selfLoop) continue;
    const path = cyclePath(component, deps, docIndex);
    const named = path.join(' → ');
    const cell = cells[docIndex.get(path[0] ?? first) ?? 0];
    file.message(`cycle between cells: ${named}; a cell cannot import, directly or not, from itself`, {
      place: cell?.position,
      ruleId: 'cycle',
      source: SOURCE,
    });
    for (const id of component) blocked.set(id, `is in the cycle ${named}`);
  }

  const transitive = (id: string): string[] => {
    const found = new Set<string>();
    const stack = [id];
    while (stack.length > 0) {
      const next = stack.pop() as string;
      for (const d of dependentsOf.get(next) ?? []) {
        if (!found.has(d) && d !== id) {
          found.add(d);
          stack.push(d);
        }
      }
    }
    return [...found].sort((a, b) => (docIndex.get(a) ?? 0) - (docIndex.get(b) ?? 0));
  };

  // A cell importing a blocked cell is blocked too, naming the dependency it imports.
  for (let changed = true; changed; ) {
    changed = false;
    for (const cell of cells) {
      if (blocked.has(cell.id)) continue;
      const dep = (deps.get(cell.id) ?? []).find((d) => blocked.has(d));
      if (dep === undefined) continue;
      blocked.set(cell.id, `depends on cell "${dep}", which ${blocked.get(dep)}`);
      changed = true;
    }
  }

  // Kahn's algorithm over the unblocked cells, picking the earliest cell in the document.
  const order: string[] = [];
  const remaining = new Map<string, number>();
  for (const cell of cells) {
    if (!blocked.has(cell.id)) remaining.set(cell.id, (deps.get(cell.id) ?? []).length);
  }
  const ready = [...remaining].filter(([, n]) => n === 0).map(([id]) => id);
  while (ready.length > 0) {
    ready.sort((a, b) => (docIndex.get(a) ?? 0) - (docIndex.get(b) ?? 0));
    const id = ready.shift() as string;
    order.push(id);
    for (const d of dependentsOf.get(id) ?? []) {
      const n = remaining.get(d);
      if (n === undefined) continue;
      remaining.set(d, n - 1);
      if (n - 1 === 0) ready.push(d);
    }
  }

  return {
    order,
    deps: (id) => [...(deps.get(id) ?? [])],
    dependents: transitive,
    blocked,
  };
}

/** Tarjan's algorithm; components come out in reverse topological order. */
function stronglyConnected(ids: string[], deps: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];

  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of deps.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop();
        if (w === undefined) break;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      components.push(component);
    }
  };
  for (const id of ids) if (!index.has(id)) connect(id);
  return components;
}

/** A concrete cycle inside a component, from its earliest cell back to it: a → b → a. */
function cyclePath(component: string[], deps: Map<string, string[]>, docIndex: Map<string, number>): string[] {
  const members = new Set(component);
  const start = [...component].sort((a, b) => (docIndex.get(a) ?? 0) - (docIndex.get(b) ?? 0))[0] as string;
  // Breadth-first search from start's dependencies back to start, inside the component.
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift() as string;
    for (const w of deps.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let at: string | undefined = v; at !== undefined && at !== start; at = previous.get(at)) path.splice(1, 0, at);
        path.push(start);
        return path;
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}
