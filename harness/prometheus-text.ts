// parsePrometheusText: a strict reader of the Prometheus text exposition format (0.0.4), for tests.
// prom-client writes the format but cannot read it, so the tests check what a scraper relies on:
// every line is a comment, blank, or a well-formed sample; every sample belongs to a family
// declared once with # HELP and # TYPE before it; histogram buckets carry `le`, are cumulative,
// and end with +Inf equal to _count. Any violation throws, naming the line.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
  /** sum adds the values of the samples named `name` whose labels include `labels`. */
  sum(name: string, labels?: Readonly<Record<string, string>>): number;
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const types = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const suffixes: Record<string, readonly string[]> = {
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["_sum", "_count", ""],
  counter: ["", "_total"],
};

export function parsePrometheusText(text: string): Exposition {
  const typeOf = new Map<string, string>();
  const helped = new Set<string>();
  const samples: Sample[] = [];
  const lines = text.split("\n");
  if (lines.at(-1) !== "") throw new Error("the exposition must end with a newline");
  for (const [position, line] of lines.entries()) {
    const where = `line ${position + 1}: ${line}`;
    if (line === "") continue;
    if (line.startsWith("#")) {
      const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (match === null) continue; // A plain comment.
      const [, keyword, name, rest] = match as unknown as [string, string, string, string];
      if (!metricName.test(name)) throw new Error(`bad metric name in ${where}`);
      if (keyword === "HELP") {
        if (helped.has(name)) throw new Error(`second HELP for ${name} in ${where}`);
        helped.add(name);
      } else {
        if (!types.has(rest)) throw new Error(`unknown type in ${where}`);
        if (typeOf.has(name)) throw new Error(`second TYPE for ${name} in ${where}`);
        typeOf.set(name, rest);
      }
      continue;
    }
    const sample = parseSample(line, where);
    if (familyOf(sample.name, typeOf) === undefined) throw new Error(`sample without a declared TYPE in ${where}`);
    samples.push(sample);
  }
  checkHistograms(samples, typeOf);
  return {
    types: typeOf,
    samples,
    sum(name, labels = {}) {
      return samples
        .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
        .reduce((total, sample) => total + sample.value, 0);
    },
  };
}

function familyOf(name: string, typeOf: ReadonlyMap<string, string>): string | undefined {
  for (const [family, type] of typeOf) {
    for (const suffix of suffixes[type] ?? [""]) if (`${family}${suffix}` === name) return family;
  }
  return undefined;
}

function parseSample(line: string, where: string): Sample {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
  if (match === null) throw new Error(`malformed sample in ${where}`);
  const [, name, , labelText, valueText] = match as unknown as [string, string, string | undefined, string | undefined, string];
  const labels: Record<string, string> = {};
  let rest = labelText ?? "";
  while (rest !== "") {
    const label = /^([^=]+)="((?:[^"\\]|\\["\\n])*)"(,|$)/.exec(rest);
    if (label === null) throw new Error(`malformed labels in ${where}`);
    const [whole, key, raw] = label as unknown as [string, string, string];
    if (!labelName.test(key)) throw new Error(`bad label name ${key} in ${where}`);
    if (key in labels) throw new Error(`repeated label ${key} in ${where}`);
    labels[key] = raw.replace(/\\(["\\n])/g, (_, character: string) => (character === "n" ? "\n" : character));
    rest = rest.slice(whole.length);
  }
  // Prometheus reads values with Go's ParseFloat, which takes NaN and Inf in any case (prom-client
  // writes an empty event-loop-lag summary as "Nan").
  const special = valueText.toLowerCase();
  const value =
    special === "+inf" || special === "inf" ? Number.POSITIVE_INFINITY : special === "-inf" ? Number.NEGATIVE_INFINITY : Number(valueText);
  if (Number.isNaN(value) && special !== "nan") throw new Error(`bad value in ${where}`);
  return { name, labels, value };
}

function checkHistograms(samples: readonly Sample[], typeOf: ReadonlyMap<string, string>): void {
  for (const [family, type] of typeOf) {
    if (type !== "histogram") continue;
    const series = new Map<string, { bounds: [number, number][]; count: number | undefined }>();
    const keyOf = (labels: Readonly<Record<string, string>>) =>
      JSON.stringify(
        Object.entries(labels)
          .filter(([key]) => key !== "le")
          .sort(([a], [b]) => (a < b ? -1 : 1)),
      );
    for (const sample of samples) {
      if (sample.name !== `${family}_bucket` && sample.name !== `${family}_count`) continue;
      const entry = series.get(keyOf(sample.labels)) ?? { bounds: [], count: undefined };
      series.set(keyOf(sample.labels), entry);
      if (sample.name === `${family}_count`) entry.count = sample.value;
      else {
        const le = sample.labels["le"];
        if (le === undefined) throw new Error(`${family}_bucket without le`);
        entry.bounds.push([le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), sample.value]);
      }
    }
    for (const [key, entry] of series) {
      entry.bounds.sort(([a], [b]) => a - b);
      for (let position = 1; position < entry.bounds.length; position++) {
        if ((entry.bounds[position] as [number, number])[1] < (entry.bounds[position - 1] as [number, number])[1])
          throw new Error(`${family}${key}: buckets are not cumulative`);
      }
      const last = entry.bounds.at(-1);
      if (last === undefined || last[0] !== Number.POSITIVE_INFINITY) throw new Error(`${family}${key}: no +Inf bucket`);
      if (last[1] !== entry.count) throw new Error(`${family}${key}: +Inf bucket ${last[1]} differs from _count ${entry.count}`);
    }
  }
}
