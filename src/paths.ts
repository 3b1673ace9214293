/** Where imgtool's own files live (templates, packer scripts, versions manifest), from src/ and dist/ alike. */
import { fileURLToPath } from "node:url";
import path from "node:path";

/** The repository / package root: one level above this file in both src/ and dist/. */
export const projectRoot = path.resolve(fileURLToPath(new URL(".", import.meta.url)), "..");

export const projectPath = (...parts: string[]): string => path.join(projectRoot, ...parts);
