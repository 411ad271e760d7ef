/**
 * Who the local cloud is: one account and one region. The account id is the all-zeros id AWS never
 * issues, so a local ARN can never be mistaken for a real one.
 */
export const LOCAL_ACCOUNT_ID = "000000000000";

/** The region of the local cloud's ARNs: the one the processes' SDK clients are configured with. */
export const localRegion = (env: NodeJS.ProcessEnv = process.env) => env.AWS_REGION ?? "local";
