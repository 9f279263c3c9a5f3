// A real OpenID Provider for Latchkey's tests: oidc-provider with one static confidential
// client, any login accepted (devInteractions), PKCE required. Listens on 127.0.0.1 on a free
// port and prints `listening http://127.0.0.1:PORT` once ready.
//
// Environment:
//   CLIENT_ID, CLIENT_SECRET  the static client (client_secret_basic)
//   REDIRECT_URIS             comma-separated exact redirect URIs
//   ID_TOKEN_ALG              RS256 (default), ES256 or EdDSA
//   ROGUE_JWKS=1              publish other keys under the same kids (ID tokens then fail)
//
// Accounts: any login name works; the account's claims are sub = the login,
// email = LOGIN@example.com (verified unless the login starts with "unverified"),
// preferred_username = the login.
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

function keySet() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const ed = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  return [
    { ...rsa, kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...ec, kid: 'ec-1', alg: 'ES256', use: 'sig' },
    { ...ed, kid: 'ed-1', alg: 'EdDSA', use: 'sig' },
  ];
}

function publicOnly(keys) {
  return keys.map(({ d, p, q, dp, dq, qi, ...pub }) => pub);
}

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const keys = keySet();
  const rogue = process.env.ROGUE_JWKS === '1' ? publicOnly(keySet()) : null;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.CLIENT_ID ?? 'latchkey',
      client_secret: process.env.CLIENT_SECRET ?? 'secret',
      redirect_uris: (process.env.REDIRECT_URIS ?? '').split(',').filter(Boolean),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: process.env.ID_TOKEN_ALG ?? 'RS256',
    }],
    jwks: { keys },
    cookies: { keys: ['latchkey-test-cookie-key'] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username', 'name'],
    },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: `${id}@example.com`,
            email_verified: !id.startsWith('unverified'),
            preferred_username: id,
            name: `Test ${id}`,
          };
        },
      };
    },
  });
  if (rogue) {
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path === '/jwks') ctx.body = { keys: rogue };
    });
  }
  server.on('request', provider.callback());
  console.log(`listening ${issuer}`);
});
