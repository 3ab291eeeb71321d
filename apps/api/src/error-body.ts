import type { ErrorObject } from 'ajv';
import { CloneType } from '@sinclair/typebox';
import { ERROR_CODES, ErrorResponse } from '@punctual/shared';
import { InvalidField } from './errors.js';
import { validationDetails, type ValidationDetail } from './validation.js';

export const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
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

const WHEN = {
  400: 'Invalid request: bad JSON, wrong types, unknown fields, bad cursor (details list each problem)',
  401: 'Missing or unknown API key',
  404: 'No such message (an unknown or malformed id)',
  409: 'The message is not in a state that allows this, or a request with the same Idempotency-Key is in progress',
  412: 'If-Match names another version of the message than the current one',
  413: 'Body larger than 64 KB (4 MB for a batch)',
  415: 'Body is not application/json',
  422: 'Idempotency-Key reused with another body, or RECIPIENT_OPTED_OUT: the recipient opted out of the channel or is on the tenant\'s suppression list',
  429: 'Rate limit of the tenant reached (see Retry-After)',
  500: 'Unexpected error (never with internals)',
  503: 'Redis unavailable: nothing was stored, retry later',
} as const;

export type ErrorStatus = keyof typeof WHEN;

/** Response schemas of the errors a route can answer with, in the contract's error shape. */
export function errorResponses<S extends ErrorStatus>(...statuses: S[]): Record<S, typeof ErrorResponse> {
  return Object.fromEntries(statuses.map((status) => [status, CloneType(ErrorResponse, { description: WHEN[status] })])) as Record<S, typeof ErrorResponse>;
}

/** Every route that needs an API key can also be refused for the key, the rate limit or Redis. */
export const COMMON_ERRORS = [401, 429, 500, 503] as const;
