// How every API names what is wrong with an input: the problems zod found, each with its path,
// as the `details` of an `invalid_request` answer and as one line of text. The lock node and the
// booking API answer alike.

import type { z } from "zod";

/** IssueDetail is one problem an `invalid_request` answer names: where (a dotted path; "" for the whole value) and what. */
export interface IssueDetail {
  readonly path: string;
  readonly message: string;
}

/**
 * invalidRequestOf describes a validation failure as an `invalid_request` answer gives it: every
 * problem in `details`, and all of them in one message, `invalid request: path: problem; …`, where
 * a problem with the whole value is named `wholeName` ("body" for a request body).
 */
export function invalidRequestOf(error: z.ZodError, wholeName: string): { message: string; details: IssueDetail[] } {
  const details = issueDetailsOf(error);
  return { message: `invalid request: ${issuesText(details, wholeName)}`, details };
}

/** issueDetailsOf lists a zod error's problems. */
export function issueDetailsOf(error: z.ZodError): IssueDetail[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message }));
}

/** issuesText joins problems into one line, `path: problem; …`. */
export function issuesText(details: readonly IssueDetail[], wholeName: string): string {
  return details.map((detail) => `${detail.path || wholeName}: ${detail.message}`).join("; ");
}
