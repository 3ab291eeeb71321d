import type { ErrorObject } from 'ajv';
import { ERROR_CODES } from '@punctual/shared';
import { InvalidField } from './errors.js';
import { validationDetails, type ValidationDetail } from './validation.js';

export const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The contract's error shape. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
  details?: ValidationDetail[];
}

export function errorBody(statusCode: number, code: string, message: string, details?: ValidationDetail[]): ErrorBody {
  return { statusCode, code, error: STATUS_TEXT[statusCode] ?? 'Error', message, ...(details ? { details } : {}) };
}

/** A 400 for what a schema refused; `where` is the part of the request (body, querystring…). */
export function validationBody(where: string, errors: ErrorObject[]): ErrorBody {
  const details = validationDetails(errors);
  return errorBody(400, 'VALIDATION_ERROR', `${where} is invalid: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, details);
}

interface RequestError {
  validation?: unknown;
  validationContext?: string;
  code?: string;
  statusCode?: number;
  message: string;
}

/**
 * The answer to a refusal the request itself caused (a schema's, one bad field, or one of our
 * coded errors), as the error handler sends it and as a batch reports it per item; null for
 * anything else.
 */
export function refusalBody(error: RequestError): ErrorBody | null {
  if (error.validation) return validationBody(error.validationContext ?? 'request', error.validation as ErrorObject[]);
  if (error instanceof InvalidField) {
    return errorBody(400, 'VALIDATION_ERROR', error.message, [{ path: error.path, message: error.message.slice(error.path.length + 1) }]);
  }
  if (error.code !== undefined && error.code in ERROR_CODES && error.statusCode) return errorBody(error.statusCode, error.code, error.message);
  return null;
}
