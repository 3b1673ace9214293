/** Runs the imgtool CLI (bin/imgtool loads this file): main() decides the exit code. */
import { main, reportFatal } from "./main.js";

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.exitCode = reportFatal(e);
  },
);
