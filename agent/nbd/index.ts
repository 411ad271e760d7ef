export { type NbdServer, type NbdServerOptions, startNbdServer } from "./server.js";
