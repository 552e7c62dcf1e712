/**
 * The one error class of the engine: thrown anywhere for problems that are not about a
 * document's content (unreadable file, bad flag), caught once in the CLI, which prints
 * the message and exits with `exitCode`. Problems in a document are never thrown: they
 * are positioned messages on its VFile.
 */
export class ReportError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'ReportError';
  }
}
