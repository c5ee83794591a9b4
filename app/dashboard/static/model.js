// Model page: rendered on the server; this module only wires the shared header (sign-out).
import "./common.js";
