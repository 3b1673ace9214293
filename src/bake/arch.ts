/** The architecture of an EC2 instance type (one implementation, in src/render/packer.ts). */
export { instanceArch as archOf } from "../render/packer.js";
