export declare const CLIENT_STATIC_ALLOWED: RegExp;
export declare function measureClientBundle(): Promise<{ staticBytes: number; staticModules: string[]; totalBytes: number; unsplitBytes: number }>;
