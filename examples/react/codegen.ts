import type { CodegenConfig } from "@graphql-codegen/cli";

// Types for every operation in src/, generated from the API's own copy of its schema.
const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["src/**/*.{ts,tsx}", "!src/gql/**"],
  ignoreNoDocuments: false,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        enumsAsTypes: true,
        useTypeImports: true,
        strictScalars: true,
        scalars: { DateTime: "string", JSON: "Record<string, unknown>" },
      },
    },
  },
};

export default config;
