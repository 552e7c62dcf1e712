/** The one invariant check of src/ml: throws `message` (say what was expected and what came) when `condition` is falsy. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}
