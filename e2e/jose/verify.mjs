// verify.mjs verifies Gatehouse access tokens with the independent `jose`
// library, against the server's published JWKS.
//
// Input (stdin, one JSON object):
//   {"jwks_url": "...", "issuer": "...", "audience": "...", "tokens": ["...", ...]}
// Output (stdout): one JSON line per token, in order:
//   {"ok":true,"alg":"...","kid":"...","sub":"..."}
//   {"ok":false,"code":"ERR_...","error":"..."}
// Exit status: 0 when the job ran (whatever the verdicts), 2 when the job is
// malformed or the JWKS cannot be fetched (then no verdict is printed, so a
// refusal can never come from a missing key set).

import { createRemoteJWKSet, jwtVerify } from 'jose';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function fail(msg) {
  process.stderr.write(`verify.mjs: ${msg}\n`);
  process.exit(2);
}

const job = JSON.parse(await readStdin());
for (const field of ['jwks_url', 'issuer', 'audience']) {
  if (typeof job[field] !== 'string' || job[field] === '') fail(`job.${field} must be a non-empty string`);
}
if (!Array.isArray(job.tokens)) fail('job.tokens must be an array');

const jwks = createRemoteJWKSet(new URL(job.jwks_url), { timeoutDuration: 5000 });
try {
  await jwks.reload();
} catch (err) {
  fail(`fetch JWKS ${job.jwks_url}: ${err.code ?? ''} ${err.message}`);
}

const options = {
  issuer: job.issuer,
  audience: job.audience,
  typ: 'at+jwt',
  algorithms: ['EdDSA', 'ES256', 'RS256'],
};

for (const token of job.tokens) {
  let line;
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, options);
    line = { ok: true, alg: protectedHeader.alg, kid: protectedHeader.kid, sub: payload.sub };
  } catch (err) {
    line = { ok: false, code: err.code ?? 'ERR_UNKNOWN', error: err.message };
  }
  process.stdout.write(JSON.stringify(line) + '\n');
}
