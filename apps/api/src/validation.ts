import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

function ajv(options: Options): Ajv {
  const instance = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: true, verbose: true, strict: false, ...options });
  addFormats.default(instance);
  return instance;
}

/**
 * Bodies are validated as sent (a number given as a string is a 400, unknown fields are a 400);
 * query strings and params are text, so their numbers are converted.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = ajv({ coerceTypes: false });
  const coercing = ajv({ coerceTypes: true });
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object);
}

/** A validator of one body as a route's schema checks it: a batch checks each of its items with it. */
export function bodyValidator<T>(schema: object): ValidateFunction<T> {
  return ajv({ coerceTypes: false }).compile<T>(schema);
}

export interface ValidationDetail {
  path: string;
  message: string;
}

/**
 * Ajv's errors as the contract's `details`: one line per problem. A failed `anyOf` (sendAt:
 * epoch ms or ISO string) is reported once, with the schema's description, instead of once per
 * alternative.
 */
export function validationDetails(errors: ErrorObject[]): ValidationDetail[] {
  const anyOf = errors.filter((e) => e.keyword === 'anyOf').map((e) => e.schemaPath);
  return errors
    .filter((e) => !anyOf.some((path) => e.schemaPath !== path && e.schemaPath.startsWith(path.replace(/\/anyOf$/, '/anyOf/'))))
    // a bad key is reported by the rule it broke, which names the key; this is only its summary
    .filter((e) => e.keyword !== 'propertyNames')
    .map((e) => ({ path: pathOf(e), message: messageOf(e) }));
}

function pathOf(e: ErrorObject): string {
  if (e.propertyName !== undefined) return `${e.instancePath}/${e.propertyName.replaceAll('~', '~0').replaceAll('/', '~1')}`;
  if (e.keyword === 'required') return `${e.instancePath}/${String(e.params.missingProperty)}`;
  if (e.keyword === 'additionalProperties') return `${e.instancePath}/${String(e.params.additionalProperty)}`;
  return e.instancePath || '/';
}

function messageOf(e: ErrorObject): string {
  if (e.propertyName !== undefined) return `as a key ${e.message ?? 'is invalid'}`;
  const description = (e.parentSchema as { description?: string } | undefined)?.description;
  switch (e.keyword) {
    case 'anyOf':
      return description ? `must be ${description[0]!.toLowerCase()}${description.slice(1)}` : 'has the wrong type';
    case 'enum':
      return `must be one of: ${(e.params.allowedValues as unknown[]).join(', ')}`;
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known field';
    default:
      return e.message ?? 'is invalid';
  }
}
