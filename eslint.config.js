// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".imgtool/", "coverage/", "**/*.golden.*"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "error",
      // One machine-arch module: src/config/arch.ts (machineArch()) reads process.arch; nothing else does.
      "no-restricted-properties": [
        "error",
        { object: "process", property: "arch", message: "Use machineArch() from src/config/arch.ts." },
      ],
    },
  },
  {
    // Plain Node scripts (test stand-ins for programs).
    files: ["**/*.mjs"],
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        setInterval: "readonly",
        setTimeout: "readonly",
        URL: "readonly",
      },
    },
  },
  {
    // The IAM referee's packages are AGPL-3.0: test-only devDependencies, never part of what imgtool ships.
    files: ["src/**", "bin/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["@cloud-copilot/*", "**/test/**"],
              message:
                "AGPL-3.0 test-only packages (the IAM referee) and test code must not be imported from src/.",
            },
          ],
        },
      ],
    },
  },
  {
    // Only the CLI's output layer, scripts, benchmarks and test support may print.
    files: ["src/cli/**", "scripts/**", "bench/**", "test/**", "examples/**"],
    rules: { "no-console": "off" },
  },
);
