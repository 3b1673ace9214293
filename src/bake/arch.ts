/** The architecture of an EC2 instance type (one implementation: src/config/arch.ts). */
export { instanceArch as archOf } from "../config/arch.js";
