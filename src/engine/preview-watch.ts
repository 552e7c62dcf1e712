/**
 * File watching for the preview: a set of files, replaced after every build (the document,
 * the project files its cells import, its bibliographies), and one callback per change.
 *
 * Node's fs.watch watches the files' folders (one watch per folder, not recursive) and the
 * events are filtered by file name. A folder's watch sees every way a file is saved: written
 * in place, replaced by rename (vim, many IDEs: a watch on the file itself would follow the
 * old inode), deleted and written again. chokidar was tried first: it drops a second change
 * of a file within 50 ms of the first (two quick saves: the second was never rebuilt) and
 * loses a deleted file unless it is the only one watched.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export interface Watcher {
  /** Watches exactly these absolute paths from now on. */
  set(paths: string[]): void;
  close(): Promise<void>;
}

/** Makes a watcher calling `onChange(path)` when a watched file is written, created, replaced or removed. */
export type WatchFactory = (onChange: (path: string) => void) => Watcher;

export const folderWatcher: WatchFactory = (onChange) => {
  let files = new Set<string>();
  const folders = new Map<string, FSWatcher>();

  const watchFolder = (folder: string): void => {
    try {
      const watcher = watch(folder, { persistent: true }, (_event, name) => {
        // No name (some platforms, some events): any watched file of the folder may have changed.
        if (name === null) {
          for (const file of files) if (dirname(file) === folder) onChange(file);
          return;
        }
        const file = join(folder, name.toString());
        if (files.has(file)) onChange(file);
      });
      // A folder that goes away (or a watch the system withdraws) is watched again at the next set().
      watcher.on('error', () => {
        watcher.close();
        if (folders.get(folder) === watcher) folders.delete(folder);
      });
      folders.set(folder, watcher);
    } catch {
      // The folder does not exist (yet): the next set() tries again.
    }
  };

  return {
    set(paths) {
      files = new Set(paths.map((p) => resolve(p)));
      const wanted = new Set([...files].map((p) => dirname(p)));
      for (const [folder, watcher] of folders) {
        if (!wanted.has(folder)) {
          watcher.close();
          folders.delete(folder);
        }
      }
      for (const folder of wanted) if (!folders.has(folder)) watchFolder(folder);
    },
    async close() {
      for (const watcher of folders.values()) watcher.close();
      folders.clear();
    },
  };
};
