"""The shipped profile-load flow (scenarios/profile-load.yaml) as a Locust user, for
bench/scenario.sh: requests per CPU-second beside sonde and goose on the same work.

- once per user at start: GET /demo/identities, status 200, the `whale` user id and token;
- then in a loop: GET /users/{id}/profile with `Authorization: Bearer {token}`, status 200,
  capture `recent_investments[0].startup_id` from the JSON body; then
  GET /users/{id}/investments/total and GET /startups/{startup_id}, both with the bearer token
  and a status check, one after the other (a Locust user is one greenlet; sonde runs these two
  concurrently as a parallel group).

FastHttpUser (geventhttpclient), no wait time: each user loops as fast as the target answers.
"""

from locust import FastHttpUser, task


class ProfileLoad(FastHttpUser):
    def on_start(self):
        self.user_id = None
        with self.client.get("/demo/identities", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
            whale = next((i for i in r.json() if i.get("name") == "whale"), None)
            if whale is None:
                r.failure("no whale identity")
                return
        self.user_id = whale["user_id"]
        self.auth = {"Authorization": f"Bearer {whale['token']}"}

    @task
    def profile_load(self):
        if self.user_id is None:
            return
        uid = self.user_id
        with self.client.get(
            f"/users/{uid}/profile", headers=self.auth, name="profile", catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
            try:
                startup = r.json()["recent_investments"][0]["startup_id"]
            except (ValueError, KeyError, IndexError, TypeError):
                r.failure("no recent_investments[0].startup_id")
                return
        for path, name in (
            (f"/users/{uid}/investments/total", "total"),
            (f"/startups/{startup}", "startup"),
        ):
            with self.client.get(path, headers=self.auth, name=name, catch_response=True) as r:
                if r.status_code != 200:
                    r.failure(f"status {r.status_code}")
