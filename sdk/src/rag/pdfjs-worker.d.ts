// pdfjs-dist ships no declarations for its worker entry; extract-pdf.ts only passes the module to pdf.js.
declare module "pdfjs-dist/build/pdf.worker.mjs" {
  export const WorkerMessageHandler: unknown;
}
