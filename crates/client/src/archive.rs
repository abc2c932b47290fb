//! A pool's archive: settings, listing and restores.

use logpool_wire::archive::{
    ArchiveListing, ArchiveSettings, ArchiveSettingsPatch, Restore, RestoreRequest,
};

use crate::{ClientResult, LogpoolClient};

fn archive_path(project: &str, pool: &str) -> String {
    format!("/v1/projects/{project}/pools/{pool}/archive")
}

impl LogpoolClient {
    /// A pool's archive settings (the defaults when never set).
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn archive_settings(
        &self,
        project: &str,
        pool: &str,
    ) -> ClientResult<ArchiveSettings> {
        self.get_as(&format!("{}/settings", archive_path(project, pool)))
            .await
    }

    /// Changes a pool's archive settings; members of `patch` left out keep their
    /// values.
    ///
    /// # Errors
    /// Any non-2xx answer (400 naming the field out of its limits).
    pub async fn set_archive_settings(
        &self,
        project: &str,
        pool: &str,
        patch: &ArchiveSettingsPatch,
    ) -> ClientResult<ArchiveSettings> {
        self.send_as(
            reqwest::Method::PUT,
            &format!("{}/settings", archive_path(project, pool)),
            patch,
        )
        .await
    }

    /// The archived objects whose records overlap `[from, to)` (each optional, in
    /// the forms search takes).
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn archive_listing(
        &self,
        project: &str,
        pool: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> ClientResult<ArchiveListing> {
        let mut query = Vec::new();
        query.extend(from.map(|from| ("from", from)));
        query.extend(to.map(|to| ("to", to)));
        let response = self
            .request(reqwest::Method::GET, self.url(&archive_path(project, pool)))
            .query(&query)
            .send()
            .await?;
        Self::answer(response).await
    }

    /// Starts restoring an archived range into another pool, or returns the same
    /// restore when it was asked for before.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn restore(
        &self,
        project: &str,
        pool: &str,
        request: &RestoreRequest,
    ) -> ClientResult<Restore> {
        self.send_as(
            reqwest::Method::POST,
            &format!("{}/restore", archive_path(project, pool)),
            request,
        )
        .await
    }

    /// One restore's progress.
    ///
    /// # Errors
    /// Any non-2xx answer (404 when unknown).
    pub async fn restore_status(
        &self,
        project: &str,
        pool: &str,
        id: &str,
    ) -> ClientResult<Restore> {
        self.get_as(&format!("{}/restore/{id}", archive_path(project, pool)))
            .await
    }
}
