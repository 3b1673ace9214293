/**
 * The error a stand-in operation throws to answer with an AWS error: the server renders it in the
 * service's own protocol shape (EC2 Response/Errors, awsQuery ErrorResponse, JSON 1.1 __type).
 */

export class ServiceError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = code;
  }
}

export function fail(code: string, message: string, status = 400): never {
  throw new ServiceError(code, message, status);
}
