/**
 * File watching for the preview: a set of files, replaced after every build (the document,
 * the project files its cells import, its bibliographies), and one callback per change.
 * chokidar watches the files' folders: editors that save by writing a temporary file and
 * renaming it over the original (vim, many IDEs) replace the file's inode, and a file may be
 * deleted and written again; a watch on the folder sees all of it as changes of the file.
 */
import { dirname, resolve } from 'node:path';
import { watch as chokidarWatch } from 'chokidar';

export interface Watcher {
  /** Watches exactly these absolute paths from now on. */
  set(paths: string[]): void;
  close(): Promise<void>;
}

/** Makes a watcher calling `onChange(path)` when a watched file is written, created or removed. */
export type WatchFactory = (onChange: (path: string) => void) => Watcher;

export const chokidarWatcher: WatchFactory = (onChange) => {
  // The folders of the files are watched (one level deep), not the files: a watch on a file
  // is lost when the file is deleted and created again (chokidar 4 re-adds it only when it is
  // the single file watched), a folder's is not. Events of other files in them are ignored.
  const watcher = chokidarWatch([], { ignoreInitial: true, persistent: true, depth: 0 });
  let files = new Set<string>();
  let folders = new Set<string>();
  for (const event of ['add', 'change', 'unlink'] as const) {
    watcher.on(event, (changed: string) => {
      if (files.has(resolve(changed))) onChange(resolve(changed));
    });
  }
  // A watch that fails (a folder removed, too many watches) must not end the preview.
  watcher.on('error', () => {});
  return {
    set(paths) {
      files = new Set(paths.map((p) => resolve(p)));
      const next = new Set([...files].map((p) => dirname(p)));
      const gone = [...folders].filter((p) => !next.has(p));
      const added = [...next].filter((p) => !folders.has(p));
      if (gone.length > 0) watcher.unwatch(gone);
      if (added.length > 0) watcher.add(added);
      folders = next;
    },
    close: () => watcher.close(),
  };
};
