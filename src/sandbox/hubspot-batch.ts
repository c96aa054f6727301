/**
 * The fake HubSpot's contact batch endpoints: POST /crm/v3/objects/contacts/batch/read, /update
 * and /create. Each is one call against the rate limit, whatever the number of inputs.
 *
 * What HubSpot documents:
 * - "Object API batch endpoints are limited to 100 inputs per request"
 *   (https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis#limits).
 *   HubSpot documents no wording for the 400 it answers over the limit; the fake words it like
 *   the one HubSpot answers for property histories, whose limit is 50 inputs ("The maximum number
 *   of inputs supported in a batch request for property histories is 50. Please reduce the number
 *   of items and try again", VALIDATION_ERROR, as reported in activepieces/activepieces#9359).
 * - Answers: {status: "COMPLETE", results, numErrors?, errors?, startedAt, completedAt}; create
 *   answers 201, read and update 200, and 207 Multi-Status "when there are different statuses
 *   (e.g., errors and successes)".
 * - One invalid input: "For the object APIs' batch create endpoints, you can enable multi status
 *   responses that include partial failures ... include a unique objectWriteTraceId value for
 *   each input" (https://developers.hubspot.com/docs/api-reference/error-handling#multi-status-errors).
 *   So without trace ids on every input, one invalid input fails the whole batch with the error
 *   a single call would get (400 VALIDATION_ERROR, 409 CONFLICT for an email another contact
 *   has) and nothing is written; with them, batch create answers 207, creates the valid inputs
 *   and lists each failed one as {status: "error", category, message, context:
 *   {objectWriteTraceId: [id]}}. Multi-status is documented for create only, so a batch update
 *   with an invalid property value fails as a whole, trace ids or not.
 * Observed behaviour the docs do not spell out (issues and client code of HubSpot's users):
 * - Ids that do not exist (or are archived) are not a failure of the call: read and update answer
 *   207 with what they found, and one error {status: "error", category: "OBJECT_NOT_FOUND",
 *   message: "Could not get some CONTACT objects, they may be deleted or not exist. Check that
 *   ids are valid.", context: {ids: [...]}} (an update input with an objectWriteTraceId gets its
 *   own error, with the trace id in its context).
 * - The same id twice in an update: 400 "Duplicate IDs found in batch input: [id]. IDs must be
 *   unique" with context {ids}. A read returns such a contact once.
 * - Batch update by `idProperty` other than the record id: 400 "Unable to perform update/upsert
 *   by non-unique 0-1 property" (HubSpot/hubspot-api-nodejs#548).
 * The same email twice in one create (not documented): 400 VALIDATION_ERROR naming it, or, with
 * trace ids, an error for the later input.
 * Webhooks fire as for single calls: a creation and one property change per changed property,
 * delivered together (one POST per 100 events) after the answer.
 */
import { hubspotError, isPlainObject, jsonResponse, type JsonObject, type JsonValue } from "./fake-service";
import { isProblem, parsePropertiesInput, problemResponse, render, type InputProblem } from "./hubspot-contact";
import { badIdProperty, conflictResponse, createRecord, emailOwner, ID_PROPERTIES, lookup, updateRecord, type Ctx } from "./hubspot-records";

export const BATCH_LIMIT = 100;
export const HISTORY_BATCH_LIMIT = 50;
const NOT_FOUND = "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.";

export function batchRoute(operation: string, ctx: Ctx): Response {
  if (operation === "read") return batchRead(ctx);
  if (operation === "update") return batchUpdate(ctx);
  if (operation === "create") return batchCreate(ctx);
  return hubspotError(404, "resource not found", "OBJECT_NOT_FOUND");
}

function batchRead(ctx: Ctx): Response {
  const parsed = readInputs(ctx, "BatchReadInputSimplePublicObjectId");
  if (parsed instanceof Response) return parsed;
  const { body, inputs } = parsed;
  const properties = stringList(body.properties, "properties");
  const withHistory = stringList(body.propertiesWithHistory, "propertiesWithHistory");
  if (properties instanceof Response) return properties;
  if (withHistory instanceof Response) return withHistory;
  if (withHistory.length > 0 && inputs.length > HISTORY_BATCH_LIMIT) return tooMany(HISTORY_BATCH_LIMIT, " for property histories");
  const idProperty = body.idProperty ?? "hs_object_id";
  if (typeof idProperty !== "string" || !ID_PROPERTIES.includes(idProperty)) return badIdProperty(String(idProperty));
  const ids = inputIds(inputs);
  if (ids instanceof Response) return ids;

  const startedAt = ctx.iso();
  const archived = ctx.url.searchParams.get("archived") === "true";
  const results: JsonObject[] = [];
  const returned = new Set<string>();
  const missing: string[] = [];
  for (const id of ids) {
    const contact = lookup(ctx.data, id, idProperty, archived);
    if (contact === undefined) {
      if (!missing.includes(id)) missing.push(id);
    } else if (!returned.has(contact.id)) {
      returned.add(contact.id);
      results.push(render(ctx.data, contact, properties.length > 0 ? properties : null, withHistory.length > 0 ? withHistory : null));
    }
  }
  const errors = missing.length > 0 ? [notFound(missing)] : [];
  return batchResponse(results, errors, startedAt, ctx.iso(), 200);
}

function batchUpdate(ctx: Ctx): Response {
  const parsed = readInputs(ctx, "BatchInputSimplePublicObjectBatchInput");
  if (parsed instanceof Response) return parsed;
  const ids = inputIds(parsed.inputs);
  if (ids instanceof Response) return ids;
  const items: { id: string; traceId: string | undefined; properties: Record<string, string> }[] = [];
  for (const [i, input] of parsed.inputs.entries()) {
    if (input.idProperty !== undefined && input.idProperty !== "hs_object_id") {
      return hubspotError(400, "Unable to perform update/upsert by non-unique 0-1 property", "VALIDATION_ERROR");
    }
    // Multi-status covers batch create only: one invalid input fails the whole update.
    const properties = parsePropertiesInput(input, "SimplePublicObjectBatchInput");
    if (isProblem(properties)) return problemResponse(properties);
    items.push({ id: ids[i] ?? "", traceId: traceIdOf(input), properties });
  }
  const duplicates = [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
  if (duplicates.length > 0) {
    return hubspotError(400, `Duplicate IDs found in batch input: [${duplicates.join(", ")}]. IDs must be unique`, "VALIDATION_ERROR", { context: { ids: duplicates } });
  }

  const found = items.map((item) => ({ ...item, contact: lookup(ctx.data, item.id, "hs_object_id", false) }));
  const claimed = new Map<string, string>();
  for (const item of found) {
    const email = item.properties.email;
    if (item.contact === undefined || email === undefined || email === "") continue;
    const owner = emailOwner(ctx.data, email, item.contact.id)?.id ?? claimed.get(email);
    if (owner !== undefined) return conflictResponse(owner);
    claimed.set(email, item.contact.id);
  }

  const startedAt = ctx.iso();
  const results: JsonObject[] = [];
  const errors: JsonObject[] = [];
  const untraced: string[] = [];
  for (const item of found) {
    if (item.contact === undefined) {
      if (item.traceId === undefined) untraced.push(item.id);
      else errors.push(notFound([item.id], item.traceId));
      continue;
    }
    updateRecord(ctx, item.contact, item.properties);
    results.push(render(ctx.data, item.contact, Object.keys(item.contact.properties), []));
  }
  if (untraced.length > 0) errors.unshift(notFound(untraced));
  return batchResponse(results, errors, startedAt, ctx.iso(), 200);
}

function batchCreate(ctx: Ctx): Response {
  const parsed = readInputs(ctx, "BatchInputSimplePublicObjectInputForCreate");
  if (parsed instanceof Response) return parsed;
  const { inputs } = parsed;
  const multiStatus = inputs.length > 0 && inputs.every((input) => traceIdOf(input) !== undefined);
  const accepted: Record<string, string>[] = [];
  const errors: JsonObject[] = [];
  const claimed = new Set<string>();
  for (const input of inputs) {
    const properties = parsePropertiesInput(input, "SimplePublicObjectInputForCreate");
    const email = isProblem(properties) ? undefined : properties.email;
    const owner = email === undefined ? undefined : emailOwner(ctx.data, email, null);
    const problem: InputProblem | null = isProblem(properties) ? properties
      : owner !== undefined ? { httpStatus: 409, category: "CONFLICT", message: `Contact already exists. Existing ID: ${owner.id}` }
      : email !== undefined && email !== "" && claimed.has(email)
        ? { httpStatus: 400, category: "VALIDATION_ERROR", message: `Duplicate emails found in batch input: [${email}]. Emails must be unique` }
        : null;
    if (problem === null) {
      if (email !== undefined && email !== "") claimed.add(email);
      accepted.push(properties as Record<string, string>);
    } else if (!multiStatus) {
      return problemResponse(problem); // nothing is created
    } else {
      errors.push({ status: "error", category: problem.category, message: problem.message, ...(problem.extra ?? {}), context: { objectWriteTraceId: [traceIdOf(input) ?? ""] } });
    }
  }
  const startedAt = ctx.iso();
  const results = accepted.map((properties) => {
    const contact = createRecord(ctx, properties);
    return render(ctx.data, contact, Object.keys(contact.properties), []);
  });
  return batchResponse(results, errors, startedAt, ctx.iso(), 201);
}

// ---- helpers -------------------------------------------------------------------------------

function readInputs(ctx: Ctx, inputType: string): { body: JsonObject; inputs: JsonObject[] } | Response {
  if (ctx.body.kind === "invalid") return hubspotError(400, "Invalid input JSON on line 1, column 1: Unexpected character", "VALIDATION_ERROR");
  const body = ctx.body.kind === "json" ? ctx.body.value : null;
  if (!isPlainObject(body) || !Array.isArray(body.inputs) || !body.inputs.every(isPlainObject)) {
    return hubspotError(400, `Invalid input JSON on line 1, column 1: Cannot build ${inputType}, some of required attributes are not set [inputs]`, "VALIDATION_ERROR");
  }
  if (body.inputs.length > BATCH_LIMIT) return tooMany(BATCH_LIMIT, "");
  return { body, inputs: body.inputs as JsonObject[] };
}

function tooMany(limit: number, what: string): Response {
  return hubspotError(400, `The maximum number of inputs supported in a batch request${what} is ${limit}. Please reduce the number of items and try again`, "VALIDATION_ERROR");
}

/** Each input's `id` as a string (HubSpot ids are strings; a number is taken as its digits). */
function inputIds(inputs: JsonObject[]): string[] | Response {
  const ids: string[] = [];
  for (const input of inputs) {
    const id = input.id;
    if (typeof id === "string" && id !== "") ids.push(id);
    else if (typeof id === "number" && Number.isSafeInteger(id)) ids.push(String(id));
    else return hubspotError(400, "Invalid input JSON on line 1, column 1: Cannot build SimplePublicObjectId, some of required attributes are not set [id]", "VALIDATION_ERROR");
  }
  return ids;
}

/** An optional list of property names; [] when absent. */
function stringList(value: JsonValue | undefined, name: string): string[] | Response {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value as string[];
  return hubspotError(400, `Invalid input JSON on line 1, column 1: ${name} must be an array of property names`, "VALIDATION_ERROR");
}

function traceIdOf(input: JsonObject): string | undefined {
  return typeof input.objectWriteTraceId === "string" && input.objectWriteTraceId !== "" ? input.objectWriteTraceId : undefined;
}

function notFound(ids: string[], traceId?: string): JsonObject {
  const context: JsonObject = traceId === undefined ? { ids } : { ids, objectWriteTraceId: [traceId] };
  return { status: "error", category: "OBJECT_NOT_FOUND", message: NOT_FOUND, context };
}

/** HubSpot's batch answer, fields in the order of its docs' example; 207 when anything failed. */
function batchResponse(results: JsonObject[], errors: JsonObject[], startedAt: string, completedAt: string, okStatus: number): Response {
  const body: JsonObject = { status: "COMPLETE", results };
  if (errors.length > 0) {
    body.numErrors = errors.length;
    body.errors = errors;
  }
  body.startedAt = startedAt;
  body.completedAt = completedAt;
  return jsonResponse(body, errors.length > 0 ? 207 : okStatus);
}
