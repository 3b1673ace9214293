/** The `--role` option's value as roles: `all` is every role. */
import { ROLES, type Role } from "../config/schema.js";

export function rolesOf(role: string): Role[] {
  return role === "all" ? [...ROLES] : [role as Role];
}
