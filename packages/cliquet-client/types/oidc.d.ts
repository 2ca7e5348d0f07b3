// Type declarations of cliquet-client/oidc.
export {
  pkceLogin,
  pkceCallback,
  pkceChallenge,
  pkceVerifier,
  tokenSource,
  discover,
  openidProviders,
  type Tokens,
  type PKCELoginOptions,
  type PKCECallbackOptions,
} from "./index.js";
