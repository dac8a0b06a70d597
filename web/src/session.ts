// Who is signed in: `GET /users/me` with the session cookie; null when signed out.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { api, ApiError, call, onSessionEnded, type User } from "./api/client";
import { forgetReads } from "./data";
import { clearDrafts } from "./drafts";
import { live } from "./live";
import { pendingStore } from "./pending";
import { navigate } from "./router";

export function useMe() {
  const queryClient = useQueryClient();
  const query = useQuery({
    queryKey: ["me"],
    queryFn: async (): Promise<User | null> => {
      try {
        return await call(api.GET("/api/v1/users/me"));
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return null;
        throw e;
      }
    },
    staleTime: Infinity,
  });
  useEffect(
    () =>
      onSessionEnded(() => {
        live.stop();
        forgetSession();
        queryClient.setQueryData(["me"], null);
        navigate("/signin", true);
      }),
    [queryClient],
  );
  return query;
}

export async function signOut(queryClient: ReturnType<typeof useQueryClient>): Promise<void> {
  await api.POST("/api/v1/auth/logout", { body: {} }).catch(() => undefined);
  live.stop();
  forgetSession();
  queryClient.clear();
  queryClient.setQueryData(["me"], null);
  navigate("/signin", true);
}

/** What this tab kept for the user who leaves: not for the next one. */
function forgetSession(): void {
  pendingStore.clear();
  forgetReads();
  clearDrafts();
}
